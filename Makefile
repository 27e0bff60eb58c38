# Vessel: `make` builds everything into bin/; `make demo` and `make test` also install what a fresh
# Debian 12 machine lacks (scripts/setup.sh). See README.md.
DOTNET ?= dotnet
CC ?= gcc
BIN := bin
PUBLISH := .cache/publish
EXECUTOR_SRC := $(wildcard src/executor/*.c) $(wildcard src/executor/*.h)
CSHARP_SRC := $(shell find src -name '*.cs' -o -name '*.csproj' 2>/dev/null) Directory.Build.props Directory.Packages.props

.PHONY: all build setup demo test bench clean
all: build
build: $(BIN)/vessel-executor $(BIN)/vessel-runc $(BIN)/vessel $(BIN)/vesseld

setup:
	@scripts/setup.sh

$(BIN)/vessel-executor: $(EXECUTOR_SRC)
	@mkdir -p $(BIN)
	$(CC) -static -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $(filter %.c,$(EXECUTOR_SRC))

$(BIN)/vessel-runc: $(CSHARP_SRC)
	@mkdir -p $(BIN)
	$(DOTNET) publish src/Vessel.Runc -c Release -o $(PUBLISH)/vessel-runc --nologo -v quiet
	cp $(PUBLISH)/vessel-runc/vessel-runc $@.tmp && mv -f $@.tmp $@   # rename: works while the old binary runs

# The CLI and the daemon: NativeAOT, one file each (vesseld links SQLite statically).
$(BIN)/vessel: $(CSHARP_SRC)
	@mkdir -p $(BIN)
	$(DOTNET) publish src/Vessel.Cli -c Release -o $(PUBLISH)/vessel --nologo -v quiet
	cp $(PUBLISH)/vessel/vessel $@.tmp && mv -f $@.tmp $@   # rename: works while the old binary runs

$(BIN)/vesseld: $(CSHARP_SRC)
	@mkdir -p $(BIN)
	$(DOTNET) publish src/Vessel.Daemon -c Release -o $(PUBLISH)/vesseld --nologo -v quiet
	cp $(PUBLISH)/vesseld/vesseld $@.tmp && mv -f $@.tmp $@   # rename: works while the old binary runs

demo: setup build
	@scripts/demo.sh

test: setup build
	@scripts/test.sh

bench: setup build
	@bench/integrations.sh
	@bench/run.sh
	@bench/images.sh
	@bench/build.sh
	@bench/network.sh
	@bench/engine.sh
	@bench/vms.sh

clean:
	rm -rf $(BIN) .cache/publish
	find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
