"""A MindFormers YAML: resolution of its base_config chain, the schema of MindFormers 1.9 and the key
checks (config_check), and the model dimensions read from it (model_config)."""
