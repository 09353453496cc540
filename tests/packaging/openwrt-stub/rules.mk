# Stub of OpenWrt's rules.mk: just what a package Makefile reads before package.mk.
STUB_RULES_MK:=1
INCLUDE_DIR:=$(TOPDIR)/include
BUILD_DIR:=$(TOPDIR)/build
STAGING_DIR:=$(TOPDIR)/staging
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
empty:=
space:=$(empty) $(empty)
comma:=,
