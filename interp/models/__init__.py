"""Getting a model: load by zoo alias, GGUF file, folder or hub id (`loading`), the offline
zoo (`zoo`) and GGUF dequantisation with its cache."""
