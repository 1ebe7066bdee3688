from kb.text import fold, plain_text, render_markdown, slugify


def test_markdown_is_rendered_with_raw_html_escaped():
    html = render_markdown("**gras** <script>alert(1)</script> <b onclick=x>b</b>")
    assert "<strong>gras</strong>" in html
    assert "<script>" not in html and "<b onclick" not in html
    assert "&lt;script&gt;" in html


def test_dangerous_links_are_removed_and_others_get_rel():
    html = render_markdown("[a](javascript:alert(1)) [b](https://example.org)")
    assert 'href="javascript' not in html
    assert 'href="https://example.org"' in html and "noopener" in html


def test_user_headings_never_compete_with_page_headings():
    html = render_markdown("# Titre\n\n## Sous-titre")
    assert "<h1>" not in html and "<h2>" not in html and html.count("<h3>") == 2


def test_plain_text_and_folding():
    assert plain_text("- **Accueil** des [usagers](https://x.org)") == "Accueil des usagers"
    assert fold("Échelle d'ACTION") == "echelle d'action"


def test_slugs_are_ascii_and_split_words_at_both_apostrophes():
    assert slugify("D’une MSAP à une Maison France Service") == "d-une-msap-a-une-maison-france-service"
    assert slugify("L'accueil à Saint-Méen") == "l-accueil-a-saint-meen"


def test_rendering_is_kept_for_the_same_text_but_never_for_a_huge_one():
    from kb import text

    source = "Un **texte** publié, lu par des centaines de lecteurs : 02 98 00 00 00."
    first = text.render_markdown(source)
    hits = text._render_memo.cache_info().hits
    assert text.render_markdown(source) == first
    assert text._render_memo.cache_info().hits == hits + 1

    huge = "mot " * (text.MEMO_MAX_CHARS // 4 + 1)
    size = text._render_memo.cache_info().currsize
    assert "<p>mot mot" in text.render_markdown(huge)
    assert text._render_memo.cache_info().currsize == size  # not kept: memory stays bounded
