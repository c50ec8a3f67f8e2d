# Parley in a container (docs/operations.md, "Docker"). Two stages on debian:12-slim: the build
# stage installs the build packages with the same script as `make run` and builds Release; the
# runtime stage gets only the shared libraries the binary links (tests/deploy/check_docker.sh
# compares this list with `ldd parley`), the chat page and a container config.
#
#   docker build -t parley .
#   docker run -p 8080:8080 -v parley-data:/var/lib/parley parley
#
# Not built on the machine that wrote it (it has no Docker engine): see docs/operations.md for
# what was checked instead.

# -- build ---------------------------------------------------------------------------------------
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt CMakeLists.txt
COPY src/ src/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF -DPARLEY_BENCH=OFF \
 && cmake --build build -j "$(nproc)"

# -- runtime -------------------------------------------------------------------------------------
FROM debian:12-slim
# The libraries `ldd parley` names, by Debian package (libc6, libgcc-s1 and libstdc++6 are in the
# base image already; listing them keeps the check simple and exact). libhiredis0.14 is cluster
# mode's Redis client (docs/cluster.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libc6 libgcc-s1 libstdc++6 libcaf-core0.17 libspdlog1.10 libfmt9 libsqlite3-0 libssl3 \
      libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/*
# A system user without a login; the database directory is the only place it writes.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/parley --shell /usr/sbin/nologin parley \
 && mkdir -p /var/lib/parley \
 && chown parley:parley /var/lib/parley
COPY --from=build /src/build/parley /usr/bin/parley
COPY web/ /usr/share/parley/web/
COPY web-admin/ /usr/share/parley/web-admin/
COPY deploy/docker/config.ini /etc/parley/config.ini
COPY deploy/docker/healthcheck.sh /usr/local/bin/parley-healthcheck
USER parley
WORKDIR /var/lib/parley
VOLUME /var/lib/parley
EXPOSE 8080
# /healthz over plain HTTP from inside the container (bash's /dev/tcp: no curl in the image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/parley-healthcheck"]
# Arguments given to `docker run` (or compose's command:) come after the config file and win
# over it, e.g. --server.allowed_hosts=["chat.example.com"].
ENTRYPOINT ["/usr/bin/parley", "--config=/etc/parley/config.ini"]
