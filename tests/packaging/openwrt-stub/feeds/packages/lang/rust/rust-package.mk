# Stub of the packages feed's lang/rust/rust-package.mk.
ifndef STUB_PACKAGE_MK
  $(error rust-package.mk must be included after package.mk)
endif
ifeq ($(filter rust/host,$(PKG_BUILD_DEPENDS)),)
  $(error PKG_BUILD_DEPENDS must contain rust/host)
endif
STUB_RUST_PACKAGE_MK:=1
RUST_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mipsel||mips64||mips64el||powerpc64||riscv64||x86_64)

# Like the real one: cargo install puts the binaries below PKG_INSTALL_DIR/bin.
define RustBinPackage
  ifndef Package/$(1)/install
    define Package/$(1)/install
	$$(INSTALL_DIR) $$(1)/usr/bin/
	$$(INSTALL_BIN) $$(PKG_INSTALL_DIR)/bin/* $$(1)/usr/bin/
    endef
  endif
endef

# Like the real one: cargo install with the package's features; $(2) is extra
# arguments. The stub prints the command instead of running it.
define Build/Compile/Cargo
	@echo cargo install $(if $(strip $(RUST_PKG_FEATURES)),--features "$(strip $(RUST_PKG_FEATURES))") $(2)
endef

Build/Compile=$(call Build/Compile/Cargo)
