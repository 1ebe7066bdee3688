"""Request size limits: bodies, multipart parts and query strings answered 413/414 in French,
without the server reading what it refuses."""

from __future__ import annotations

import io
from typing import Any

import pytest

from kb import create_app
from kb.extensions import db
from kb.limits import human_size, parse_size

MB = 1024 * 1024


class HugeBody(io.RawIOBase):
    """`size` bytes (`head`, then "x") made on demand, counting what the server reads."""

    def __init__(self, size: int, head: bytes = b""):
        self.size, self.head, self.position, self.read_bytes = size, head, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the length by seeking to the end

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.position)
        if n <= 0:
            return 0
        start = self.position
        chunk = self.head[start:start + n] if start < len(self.head) else b""
        buffer[:n] = chunk + b"x" * (n - len(chunk))
        self.position += n
        self.read_bytes += n
        return n


def test_sizes_read_from_the_environment() -> None:
    assert parse_size("1M") == MB and parse_size("512K") == 512 * 1024
    assert parse_size("2048") == 2048 and parse_size("1Mo") == MB
    with pytest.raises(ValueError):
        parse_size("²")
    assert human_size(MB) == "1 Mio"


def test_kb_max_body_sets_max_content_length(monkeypatch, app_config) -> None:
    monkeypatch.setenv("KB_MAX_BODY", "2M")
    assert create_app(app_config).config["MAX_CONTENT_LENGTH"] == 2 * MB
    monkeypatch.delenv("KB_MAX_BODY")
    assert create_app(app_config).config["MAX_CONTENT_LENGTH"] == MB


def test_an_oversized_json_report_gets_a_french_json_413_unread(client, make_sheet) -> None:
    slug = make_sheet().sheet.slug
    body = HugeBody(150 * MB, head=b'{"reason": "spam", "comment": "')
    response = client.post(f"/api/v1/sheets/{slug}/reports", input_stream=body,
                           content_type="application/json")
    assert response.status_code == 413
    assert response.is_json and "trop volumineux" in response.json["message"]
    assert "1 Mio" in response.json["message"]
    assert body.read_bytes == 0  # refused on its announced length


def test_a_streamed_body_without_length_is_stopped_at_the_limit(client, make_sheet) -> None:
    slug = make_sheet().sheet.slug
    body = HugeBody(150 * MB, head=b'{"reason": "spam", "comment": "')
    response = client.post(f"/api/v1/sheets/{slug}/reports", input_stream=body,
                           content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True,
                                              "HTTP_TRANSFER_ENCODING": "chunked"})
    assert response.status_code == 413
    assert body.read_bytes <= MB + 64 * 1024


def test_an_oversized_multipart_part_to_the_login_page_gets_a_french_413(client) -> None:
    boundary = "frontiere"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"email\"; "
            "filename=\"gros.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body = HugeBody(200 * MB, head=head)
    response = client.post("/connexion", input_stream=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Envoi trop volumineux" in page and '<html lang="fr">' in page
    assert body.read_bytes == 0


def test_one_text_part_over_the_form_memory_limit_gets_413(client) -> None:
    boundary = "frontiere"
    text = "é" * (200 * 1024)  # 400 Kio of UTF-8: under 1 Mio, over one part's 256 Kio
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n"
               f"{text}\r\n--{boundary}--\r\n").encode()
    response = client.post("/connexion", data=payload,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert "par champ de formulaire" in response.get_data(as_text=True)


def test_too_many_multipart_parts_get_413(client) -> None:
    boundary = "frontiere"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"
                    for i in range(300))
    response = client.post("/connexion", data=(parts + f"--{boundary}--\r\n").encode(),
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413


def test_a_normal_long_sheet_still_fits(client, contributor, login) -> None:
    login(contributor)
    long_text = "Une phrase ordinaire avec des accents à é è. " * 440  # ~20,000 characters
    response = client.post("/fiches/nouvelle", data={
        "title": "Fiche longue", "scale": "commune", "context": long_text[:20_000],
        "results": long_text[:20_000], "method": long_text[:20_000]})
    assert response.status_code == 302


def test_an_over_long_query_string_gets_a_french_414(client) -> None:
    api = client.get("/api/v1/sheets?city=" + "x" * 33_000)
    assert api.status_code == 414 and api.is_json
    assert api.json["error"] == "request_uri_too_large"
    assert "Adresse trop longue" in api.json["message"]
    page = client.get("/recherche?q=" + "x" * 33_000)
    assert page.status_code == 414 and "Adresse trop longue" in page.get_data(as_text=True)
    assert client.get("/recherche?q=" + "x" * 4000).status_code == 200


def test_the_openapi_document_states_the_limits(client) -> None:
    document = client.get("/api/openapi.json").json
    for path, operations in document["paths"].items():
        if "get" in operations:
            assert "414" in operations["get"]["responses"], path
    assert "413" in document["paths"]["/api/v1/sheets"]["post"]["responses"]
    assert db is not None


def test_a_nul_character_is_never_a_database_error(client, make_sheet, contributor,
                                                       login) -> None:
    slug = make_sheet().sheet.slug
    assert client.get("/fiches/a%00b/historique").status_code == 404
    assert client.get("/api/v1/sheets/a%00b").status_code == 404
    # In the query it is dropped: "Br%00est" searches "Brest".
    assert client.get("/recherche?q=a%00b").status_code == 200
    assert client.get("/api/v1/sheets?city=Br%00est").json["total"] == 1
    assert client.post(f"/api/v1/sheets/{slug}/reports",
                       json={"reason": "other", "comment": "a\u0000b"}).status_code == 400
    assert client.post(f"/fiches/{slug}/signaler",
                       data={"reason": "other", "comment": "a\x00b"}).status_code == 400
