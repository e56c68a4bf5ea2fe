"""Where parsed snippets and events go: JSON Lines today; tables, subtitles, LLP tsv and
timeline plots come with the runtime's other formats."""
