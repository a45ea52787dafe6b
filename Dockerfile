# The reference model server image (docs/DOCKER.md).
#
#   make image            # = make image-context (wheels + model into build/) + docker build
#   docker build -t model-server .                      # after make image-context, with a registry
#   docker build --build-arg BASE_IMAGE=course-base:bookworm-py311-slim \
#                --build-arg BUILD_IMAGE=course-base:bookworm-py311 -t model-server .   # offline
#   docker run -p 8000:8000 model-server                # serves the baked churn model
#   docker run -v $PWD/build/digits:/models/digits:ro model-server /models/digits
#
# Two stages. The build stage installs the pinned, hash-checked runtime wheels
# (requirements-serve.lock) with --no-index from build/wheelhouse-serve into a venv and trims
# it; the runtime stage copies only the venv, the package and the model onto a slim base.
# Legacy-builder compatible (Debian's docker.io has no buildx): no heredocs, no cache mounts.
ARG BASE_IMAGE=python:3.11-slim
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS build
COPY requirements-serve.lock /tmp/requirements-serve.lock
COPY build/wheelhouse-serve/ /wheelhouse/
# pip byte-compiles what it installs; the bytecode stays (start → ready ≤ 2 s). Trimmed, in the
# same layer so the bytes never reach the image: pip itself, test suites, type stubs,
# onnxruntime's offline tools and its C-API library (the Python binding links its own copy),
# and two dependencies of model-signing's CLI that verifying a package never imports (checked
# in this image: sys.modules after verify_package): pygments (rich's syntax highlighting,
# 10 MB) and dnspython (email-validator's optional deliverability check, 3 MB).
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheelhouse --require-hashes \
        --no-cache-dir -q -r /tmp/requirements-serve.lock \
 && /opt/venv/bin/pip uninstall -q -y pip \
 && cd /opt/venv/lib/python3.11/site-packages \
 && rm -rf setuptools* pandas/tests numpy/f2py numpy/_pyinstaller \
        onnxruntime/transformers onnxruntime/quantization onnxruntime/tools \
        onnxruntime/capi/libonnxruntime.so.* pygments pygments-* dns dnspython-* \
 && find . -name tests -type d -prune -exec rm -rf {} + \
 && find . -name '*.pyi' -delete
COPY course_pkg/ /app/course_pkg/
RUN /opt/venv/bin/python -m compileall -q /app/course_pkg \
 && PYTHONPATH=/app /opt/venv/bin/python -c "import onnxruntime, model_signing, course_pkg.serving.app"

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG MODEL_NAME=churn
ARG MODEL_VERSION=unknown
ARG MODEL_SHA256=unknown
LABEL org.opencontainers.image.title="course model server" \
      org.opencontainers.image.description="FastAPI + onnxruntime server for packaged models (course_pkg.serving)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      io.course.model.name="${MODEL_NAME}" \
      io.course.model.version="${MODEL_VERSION}" \
      io.course.model.sha256="${MODEL_SHA256}"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY build/model/ /models/churn/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    COURSE_ROOT=/app \
    COURSE_SERVE_HOST=0.0.0.0 \
    COURSE_SERVE_WORKERS=1 \
    COURSE_SERVE_LOG_LEVEL=info \
    COURSE_SERVE_LOG_FORMAT=json
USER 10001
WORKDIR /app
# Port 8000 unless the platform sets PORT (Cloud Run, Hugging Face Spaces, Heroku do);
# COURSE_SERVE_PORT, when set, wins over both. So no COURSE_SERVE_PORT in ENV above.
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-m", "course_pkg.serving.healthcheck"]
# Exec form: python is PID 1 and receives `docker stop`'s SIGTERM itself (graceful, exit 0).
ENTRYPOINT ["python", "-m", "course_pkg", "serve"]
CMD ["/models/churn"]
