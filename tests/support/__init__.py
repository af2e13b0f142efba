"""What the tests share: the site's pages and languages (pages), the code blocks of its
Markdown (markdown_blocks), the named sections of its snippets (sections) and the property checks
of the custom losses (loss_properties). Imported as tests.support.<module>, from the repository
root, which pyproject.toml puts on the path next to snippets/."""
