# mailferry — build, test, demo, bench.
#   make            build build/mailferryd and build/mailferry
#   make test       install Debian deps, build, unit tests (plain + ASan/UBSan), lab e2e tests
#   make demo       install Debian deps, build, show a migration on the lab network
#   make bench      relay benchmark against HAProxy and plain forwarding (bench/relay)
#   make bench-login IMAP login sessions: direct vs mailferryd vs nginx mail (bench/login)
#   make deps       install the Debian packages needed to build and test
#   V=1             show full commands

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WFLAGS  := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
PKGS    := liburing inih libmnl libnftnl sqlite3 libpq openssl libnetfilter_queue libcap-ng
PYTHON  := /usr/bin/python3

# Instrumentation flags live apart from CFLAGS: a CFLAGS given on the
# command line (as the sub-makes below do) would silently drop them.
ifeq ($(SAN),1)
XFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# libFuzzer build (make fuzz): clang, every object instrumented.
ifeq ($(FUZZ),1)
XFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(V),1)
Q := @
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -Ilib -Igateway -Inft-rules -Imigrate -MMD -MP
ALL_CFLAGS = $(CPPFLAGS) $(WFLAGS) $(CFLAGS) $(XFLAGS) $(PKG_CFLAGS) -pthread

LIB_SRC  := $(wildcard lib/*.c)
GW_SRC   := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
NFT_SRC  := $(wildcard nft-rules/*.c)
MIG_SRC  := $(wildcard migrate/*.c)
CLI_SRC  := $(filter-out cli/main.c,$(wildcard cli/*.c))
CORE_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC) $(GW_SRC) $(NFT_SRC) $(MIG_SRC) $(CLI_SRC))
UNIT_SRC := $(wildcard tests/unit/test-*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-bin/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30

DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev \
	liburing-dev libmnl-dev libnftnl-dev libinih-dev libcmocka-dev libsqlite3-dev \
	libssl-dev libnetfilter-queue-dev libcap-ng-dev libpq-dev postgresql \
	iproute2 iputils-ping nftables iptables procps psmisc openssl curl socat \
	python3 python3-pytest \
	dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix swaks fetchmail \
	haproxy iperf3 nginx-light libnginx-mod-stream libnginx-mod-mail isync tcpdump groff-base systemd vagrant

.PHONY: install all deps test check unit unit-asan unit-pg asan-daemon e2e fuzz fuzz-run demo bench bench-login bench-ledger clean

all: $(BUILD)/mailferryd $(BUILD)/mailferry

# Keep test objects: they are not intermediate leftovers.
.SECONDARY:

$(BUILD)/libmailferry.a: $(CORE_OBJ)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/mailferryd: $(BUILD)/gateway/main.o $(BUILD)/libmailferry.a
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

$(BUILD)/mailferry: $(BUILD)/cli/main.o $(BUILD)/libmailferry.a
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/test-%: $(BUILD)/tests/unit/test-%.o $(BUILD)/libmailferry.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

$(BUILD)/fuzz-bin/fuzz-%: $(BUILD)/tests/fuzz/fuzz-%.o $(BUILD)/libmailferry.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -pthread -o $@ $^ $(PKG_LIBS)

# Every fuzz target for FUZZ_SECONDS each, from its seed corpus under
# tests/fuzz/corpus/NAME; any crash, leak or sanitizer report fails.
fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang FUZZ=1 CFLAGS="-O1 -g" fuzz-run

fuzz-run: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do n=$$(basename $$t); n=$${n#fuzz-}; \
		mkdir -p $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n; \
		echo "== fuzz $$n for $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n; \
	done

# Every Debian package the build, the tests, the demo and the benchmarks use.
deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get)"; exit 1; fi
	apt-get update -q
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

unit-asan:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 CFLAGS="-O1 -g" unit

# The ledger suite once more on a throwaway PostgreSQL cluster (a Unix
# socket only), plain and under ASan+UBSan.
unit-pg: $(BUILD)/tests/test-ledger
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 CFLAGS="-O1 -g" \
		$(BUILD)/asan/tests/test-ledger
	tests/pg/with-pg.sh $(BUILD)/tests/test-ledger
	tests/pg/with-pg.sh $(BUILD)/asan/tests/test-ledger

# The end-to-end tests run the ASan+UBSan daemon (tests/e2e/mfgateway.py).
asan-daemon:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 CFLAGS="-O1 -g" $(BUILD)/asan/mailferryd

e2e: all asan-daemon
	$(PYTHON) -m pytest -v -p no:cacheprovider tests/e2e

# The README's test command: everything, on a fresh Debian 12 box, as root.
test: deps
	$(Q)$(MAKE) --no-print-directory check

check: all unit unit-asan unit-pg e2e
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# make demo MODE=bridge: the same on the bridge-mode lab (issue 7).
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	tests/lab/demo.sh $(if $(filter bridge,$(MODE)),--bridge)

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	bench/relay/run.sh

# Installation: PREFIX (default /usr/local), DESTDIR for staging.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/mailferry $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/mailferryd $(BUILD)/mailferry $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/mailferryd.8 man/mailferry.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/mailferry.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 mailferry.conf.example $(DESTDIR)$(SYSCONFDIR)/mailferry/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/mailferryd.service.in >$(DESTDIR)$(UNITDIR)/mailferryd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mailferryd.service
bench-login: deps
	$(Q)$(MAKE) --no-print-directory all
	bench/login/run.sh

bench-ledger: deps
	$(Q)$(MAKE) --no-print-directory all
	bench/ledger/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
