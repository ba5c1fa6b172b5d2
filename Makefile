# A release build: the version stamped from git (redmesh version shows it).
VERSION ?= $(shell git describe --tags --always --dirty)
LDFLAGS := -X github.com/redmesh/redmesh/version.stamped=$(VERSION)

.PHONY: build install

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o redmesh ./cmd/redmesh

install:
	go install -trimpath -ldflags "$(LDFLAGS)" ./cmd/redmesh
