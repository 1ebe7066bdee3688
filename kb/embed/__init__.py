"""Widgets for partner sites: sheet and list iframes, widget.js, configurator, oEmbed."""
