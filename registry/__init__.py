"""The meta-learning data registry: dataset cards, loaders, the decoded cache, the store."""
