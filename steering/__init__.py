"""Steering at generation time: vectors, ablation, AUSteer, llama.cpp control vectors.

    import interp, steering
    model = interp.load("qwen2.5-coder-0.5b-instruct")
    v = steering.make_vector(model, harmful, benign, steering.ContrastConfig(layers=[12]), chat=True)
    out = model.generate(prompts, chat=True, edits=steering.steering_edits(model, [steering.VectorUse(v, alpha=4)]))
    out = model.generate(prompts, chat=True, edits=steering.ablation_edits(model, v))
    v.save("refusal.safetensors"); steering.export_gguf(v, "refusal.gguf")
"""

from interp.callable_package import make_callable as _make_callable

from .api import austeer as _austeer
from .api import refusal_direction
from .api import skills as _skills
from .apply import POSITIONS, VectorUse, ablation_edits, parse_vector_spec, steering_edits
from .austeer import AUSteerOptions, AUSteerScores, fit_austeer, momentum_scores, select, top_k, triple_activations
from .austeer_eval import AUSteerEvalConfig, AUSteerEvalResult, run_austeer_eval, task_accuracy
from .contrast import ContrastConfig, make_vector, mean_difference, pca_of_differences, read_contrast_data
from .gguf_io import export_gguf
from .refusal_steer import RefusalSteerConfig, RefusalSteerResult, run_refusal_steer
from .tasks import TASKS, Task, TaskItem, get_task, task_from_file, triples
from .vectors import SITES, SteeringVector, VectorFileError, import_gguf, model_facts

load_vector = SteeringVector.load

__all__ = [
    "AUSteerOptions", "POSITIONS", "SITES", "TASKS", "AUSteerEvalConfig", "AUSteerEvalResult", "AUSteerScores", "ContrastConfig",
    "RefusalSteerConfig", "RefusalSteerResult", "SteeringVector", "Task", "TaskItem", "VectorFileError", "VectorUse", "ablation_edits", "export_gguf",
    "fit_austeer", "get_task", "import_gguf", "load_vector", "make_vector", "mean_difference", "model_facts",
    "momentum_scores", "parse_vector_spec", "pca_of_differences", "read_contrast_data", "run_austeer_eval", "run_refusal_steer",
    "select", "steering_edits", "task_accuracy", "task_from_file", "top_k", "triple_activations", "triples",
]

# the flat API (steering/api.py): steering.austeer and steering.skills are also a module and a
# package, made callable (interp/callable_package.py); their contents stay where they are
_make_callable(__name__ + ".austeer", _austeer)
_make_callable(__name__ + ".skills", _skills)
__all__ += ["austeer", "refusal_direction", "skills"]
