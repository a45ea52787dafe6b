"""A Streamlit demo: churn (a form built from the model's schema) and digits (an upload).

    streamlit run course_pkg/demos/streamlit_app.py --server.address 127.0.0.1
    COURSE_DEMO_SERVER=http://127.0.0.1:8000 streamlit run course_pkg/demos/streamlit_app.py

Models come from ``inference.model_from_env`` (the server when ``COURSE_DEMO_SERVER`` is set,
else the ONNX packages in ``COURSE_DEMO_CHURN`` / ``COURSE_DEMO_DIGITS``). Streamlit runs
this file top to bottom on every interaction, so models are cached per process
(``st.cache_resource``) and the form only predicts when it is submitted.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from course_pkg.demos.inference import OnnxModel, PredictionError, ServerModel, model_from_env


@st.cache_resource
def load(kind: str) -> OnnxModel | ServerModel:
    return model_from_env(kind)


def show(prediction: Any) -> None:
    st.success(f"Prediction: {prediction.headline()}")
    st.bar_chart(prediction.probabilities, horizontal=True)
    st.caption(f"served by {prediction.source}")


def churn_tab() -> None:
    try:
        model = load("churn")
        fields, example = model.form()
    except (OSError, PredictionError) as error:
        st.error(f"The churn model is not available: {error}")
        return
    with st.form("churn"):
        row: dict[str, Any] = {}
        columns = st.columns(3)
        for i, field in enumerate(fields):
            name, label = field["name"], field["name"].replace("_", " ")
            with columns[i % 3]:
                if field.get("categories"):
                    choices = list(field["categories"])
                    default = example.get(name, choices[0])
                    row[name] = st.selectbox(label, choices, index=choices.index(default))
                elif field.get("dtype", "").startswith("int"):
                    row[name] = st.number_input(label, value=int(example.get(name, 0)), step=1)
                else:
                    row[name] = st.number_input(label, value=float(example.get(name, 0.0)))
        submitted = st.form_submit_button("Predict churn")
    if submitted:
        try:
            show(model.predict_row(row))
        except PredictionError as error:
            st.error(str(error))


def digits_tab() -> None:
    upload = st.file_uploader("A digit (PNG or JPEG)", type=["png", "jpg", "jpeg"])
    if upload is None:
        st.info("Upload an image of a digit.")
        return
    data = upload.getvalue()
    st.image(data, width=96)
    try:
        show(load("digits").predict_image(data))
    except (OSError, PredictionError) as error:
        st.error(str(error))


def main() -> None:
    st.set_page_config(page_title="Course models", layout="wide")
    st.title("Course models")
    churn, digits = st.tabs(["Churn", "Digits"])
    with churn:
        churn_tab()
    with digits:
        digits_tab()


# `streamlit run` executes this file as __main__; importing it (a check resolving churn_tab,
# a reader) builds no page and prints no bare-mode warnings.
if __name__ == "__main__":
    main()
