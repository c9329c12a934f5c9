# p2ptun's container image: the static binary on distroless, as a non-root
# user, its home a volume. Build: make docker (or docker build
# --build-arg VERSION=$(git describe --tags --always) -t p2ptun .).
# Example: contrib/compose/compose.yaml; README.md, "Container".

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0-dev
# The same static, stripped build as make build; the home directory is
# made here (0700) because the final image has no shell to make it.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/p2ptun/p2ptun/cli.Version=${VERSION}" -o /out/p2ptun . \
	&& mkdir -m 0700 /out/home

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/p2ptun /usr/local/bin/p2ptun
COPY --from=build --chown=65532:65532 /out/home /home/nonroot/.p2ptun
USER 65532:65532
ENV HOME=/home/nonroot P2PTUN_HOME=/home/nonroot/.p2ptun
# The identity, config.toml and peer cache: keep them across containers.
VOLUME ["/home/nonroot/.p2ptun"]
# The swarm port, TCP and QUIC.
EXPOSE 4141/tcp 4141/udp
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
	CMD ["/usr/local/bin/p2ptun", "wait", "--timeout", "10s"]
ENTRYPOINT ["/usr/local/bin/p2ptun"]
CMD ["daemon"]
