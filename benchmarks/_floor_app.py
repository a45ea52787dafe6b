"""The HTTP floor for serve_bench: a FastAPI POST that reads the body and returns a constant.

Same framework, server, event loop (uvloop) and HTTP parser (httptools) as the reference
server, and the same request body — so the gap to it is everything the model server does on
top of HTTP: parse, validate, predict, answer, log, count.
"""

from fastapi import FastAPI, Request, Response

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})  # as the server
ANSWER = b'{"predictions":[0]}'


@app.post("/floor")
async def floor(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")
