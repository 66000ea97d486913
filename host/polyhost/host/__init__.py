"""The host: the façade an app or a server embeds (`Host`), its config, durable runs and history."""
