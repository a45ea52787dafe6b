# The reference model server image — minimal for now: it packages course_pkg on a base image
# and runs its CLI. The Docker packaging issue grows it into the multi-stage server image
# (wheelhouse build stage, slim runtime, HEALTHCHECK, OCI labels).
#
#   docker build -t model-server .                                   # with a registry
#   docker build --build-arg BASE_IMAGE=course-base:bookworm-py311 -t model-server .   # offline
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY course_pkg/ /app/course_pkg/
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["python3", "-m", "course_pkg"]
CMD ["--version"]
