"""A Gradio demo: churn (a form built from the model's schema) and digits (an image upload).

    python -m course_pkg.demos.gradio_app                     # build/ packages, 127.0.0.1:7860
    COURSE_DEMO_SERVER=http://127.0.0.1:8000 python -m course_pkg.demos.gradio_app

Models come from ``inference.model_from_env``: the reference server when
``COURSE_DEMO_SERVER`` is set, else the ONNX packages (``COURSE_DEMO_CHURN``,
``COURSE_DEMO_DIGITS``, defaulting to ``models/churn`` and ``models/digits`` next to the
working directory: the layout of the Space folder). Binds ``GRADIO_SERVER_NAME`` (default
127.0.0.1) and ``GRADIO_SERVER_PORT`` (7860): the variables Hugging Face Spaces sets.
Each prediction also has an API route (``/predict_churn``, ``/predict_digit``) for
``gradio_client``. Analytics and server-side rendering are off: nothing leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .inference import OnnxModel, PredictionError, ServerModel, model_from_env

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _load(kind: str) -> OnnxModel | ServerModel | None:
    try:
        return model_from_env(kind, Path("models") / kind)
    except (OSError, PredictionError) as error:
        print(f"{kind}: not available ({error})")
        return None


def build_demo(churn: Any = None, digits: Any = None) -> Any:
    """The Blocks app for the given models (either may be None: its tab says so)."""
    import gradio as gr

    def result(prediction: Any) -> tuple[dict[str, float], str]:
        return prediction.probabilities, prediction.headline()

    with gr.Blocks(title="Churn and digits: the course's models") as demo:
        gr.Markdown("# Course models\nPredictions from the packaged ONNX models.")
        with gr.Tab("Churn"):
            if churn is None:
                gr.Markdown("The churn model is not loaded (see the app's log).")
            else:
                fields, example = churn.form()
                inputs: list[Any] = []
                with gr.Row():
                    for field in fields:
                        name, label = field["name"], field["name"].replace("_", " ")
                        if field.get("categories"):
                            choices = list(field["categories"])
                            value = example.get(name, choices[0])
                            inputs.append(gr.Dropdown(choices, value=value, label=label))
                        else:
                            precision = 0 if field.get("dtype", "").startswith("int") else None
                            value = example.get(name, 0)
                            inputs.append(gr.Number(value=value, label=label, precision=precision))
                button = gr.Button("Predict churn", variant="primary")
                probabilities = gr.Label(label="Probabilities")
                headline = gr.Textbox(label="Prediction", elem_id="churn-result")

                def predict_churn(*values: Any) -> tuple[dict[str, float], str]:
                    row = {f["name"]: v for f, v in zip(fields, values, strict=True)}
                    try:
                        return result(churn.predict_row(row))
                    except PredictionError as error:
                        raise gr.Error(str(error)) from None

                button.click(
                    predict_churn, inputs, [probabilities, headline], api_name="predict_churn"
                )
        with gr.Tab("Digits"):
            if digits is None:
                gr.Markdown("The digits model is not loaded (see the app's log).")
            else:
                image = gr.Image(type="filepath", label="A digit (PNG or JPEG)")
                button = gr.Button("Read the digit", variant="primary")
                probabilities = gr.Label(label="Probabilities", num_top_classes=3)
                headline = gr.Textbox(label="Prediction", elem_id="digit-result")

                def predict_digit(path: str | None) -> tuple[dict[str, float], str]:
                    if not path:
                        raise gr.Error("upload an image first")
                    try:
                        return result(digits.predict_image(Path(path).read_bytes()))
                    except PredictionError as error:
                        raise gr.Error(str(error)) from None

                button.click(
                    predict_digit, image, [probabilities, headline], api_name="predict_digit"
                )
    return demo


def main() -> None:
    demo = build_demo(_load("churn"), _load("digits"))
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        ssr_mode=False,
        show_error=True,
    )


if __name__ == "__main__":
    main()
