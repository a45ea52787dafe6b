"""Demo and deployment front ends: Streamlit, Gradio (and its Hugging Face Space), Azure ML.

The modules in this folder import nothing from the rest of ``course_pkg`` (only numpy,
onnxruntime, Pillow and their UI library), because ``course_pkg.deploy_folders`` copies them,
as they are, into folders that run where the course is not installed: a Space, an Azure ML
deployment. ``inference`` is the shared core: a packaged ONNX model loaded directly, or the
reference server called over HTTP, behind one ``predict_row`` / ``predict_image`` interface.
"""
