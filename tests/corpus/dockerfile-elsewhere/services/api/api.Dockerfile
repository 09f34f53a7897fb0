ARG REGISTRY
FROM ${REGISTRY}/windflow-test/busybox:1
COPY index.html /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
