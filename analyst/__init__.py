"""The analysts' tools over the published lake: investigate one entity, look up one ID number,
read flags, serve SQL over JDBC, export a blocklist. They only read; flows do the writing."""
