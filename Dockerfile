# The production image: the service and its job worker, talking to an external PostgreSQL
# (DATABASE_URL). Build context: the repository root.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LC_ALL=C.UTF-8 \
    DATA_DIR=/var/lib/escape-vo \
    HOST=0.0.0.0 \
    PORT=8000

RUN useradd --system --home-dir /var/lib/escape-vo --create-home escape
WORKDIR /opt/escape-vo
COPY schema/ schema/
COPY server/ server/
COPY client/ client/
COPY docs/ docs/
RUN pip install --no-cache-dir "./server[docs]" ./client
# /docs is built from this copy of docs/ into DATA_DIR when the container starts.
ENV ESCAPE_VO_DOCS_SOURCE=/opt/escape-vo/docs

USER escape
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/stats', timeout=4)"
CMD ["sh", "-c", "escape-vo docs build; exec escape-vo serve --workers 4"]
