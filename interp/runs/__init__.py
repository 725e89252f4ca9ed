"""Run directories and what goes in them: the `Result` base type (`results`), how fields are
stored (`fields`, `tables`, `jsonable`), config dataclasses (`config`) and prompt files
(`prompts`)."""
