ARG REGISTRY
FROM ${REGISTRY}/windflow-test/busybox:1
COPY src/site/ /www/
HEALTHCHECK --interval=1s --retries=30 CMD ["wget", "-q", "-O-", "http://127.0.0.1:8080/"]
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
