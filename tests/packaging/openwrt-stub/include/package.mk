# Stub of OpenWrt's include/package.mk: checks the PKG_* fields a feed package
# needs and provides BuildPackage, which checks the package definition and
# adds targets that print its metadata and run its install recipe.
ifndef STUB_RULES_MK
  $(error rules.mk must be included before package.mk)
endif
STUB_PACKAGE_MK:=1

stub_required_pkg:=PKG_NAME PKG_VERSION PKG_RELEASE PKG_LICENSE PKG_MAINTAINER PKG_SOURCE_URL
$(foreach v,$(stub_required_pkg),$(if $(strip $($(v))),,$(error $(v) is not set)))
$(if $(strip $(PKG_HASH)$(PKG_MIRROR_HASH)),,$(error neither PKG_HASH nor PKG_MIRROR_HASH is set))
$(if $(shell printf '%s' '$(PKG_RELEASE)' | grep -qx '[0-9][0-9]*' || echo bad),$(error PKG_RELEASE '$(PKG_RELEASE)' is not an integer))

PKG_BUILD_DIR?=$(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR?=$(PKG_BUILD_DIR)/ipkg-install

# BuildPackage NAME: the package must define TITLE, CATEGORY, SECTION and an
# install recipe; a Rust package must depend on RUST_ARCH_DEPENDS.
define BuildPackage
  export STUB_POSTINST_$(subst -,_,$(1))=$$(Package/$(1)/postinst)
  export STUB_CONFIG_$(subst -,_,$(1))=$$(Package/$(1)/config)
  $(eval $(call Package/$(1)))
  $(foreach v,TITLE CATEGORY SECTION,$(if $(strip $($(v))),,$(error Package/$(1): $(v) is not set)))
  $(if $(STUB_RUST_PACKAGE_MK),$(if $(findstring $(RUST_ARCH_DEPENDS),$(DEPENDS)),,$(error Package/$(1): DEPENDS lacks $$(RUST_ARCH_DEPENDS))))
  $(if $(value Package/$(1)/install),,$(error Package/$(1)/install is not defined))
  $(if $(value Package/$(1)/description),,$(error Package/$(1)/description is not defined))

stub-info-$(1):
	@echo 'name $(1)'
	@echo 'version $(PKG_VERSION)-r$(PKG_RELEASE)'
	@echo 'title $(TITLE)'
	@echo 'section $(SECTION)'
	@echo 'category $(CATEGORY)'
	@echo 'depends $(DEPENDS)'
	@echo 'build-depends $(PKG_BUILD_DEPENDS)'
	@echo 'license $(PKG_LICENSE)'
	@printf 'conffile %s\n' $(strip $(Package/$(1)/conffiles))

stub-postinst-$(1):
	@printf '%s\n' "$$$$STUB_POSTINST_$(subst -,_,$(1))"

stub-install-$(1):
	$(call Package/$(1)/install,$(DEST))

stub-compile-$(1):
	$$(Build/Compile)

stub-config-$(1):
	@printf '%s\n' "$$$$STUB_CONFIG_$(subst -,_,$(1))"
endef
