"""The auditors' web console (经审控制台): server-rendered pages in Chinese over the same
tokens, scopes, masking and query code as the API. See docs/console.md."""
