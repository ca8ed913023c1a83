# The Debian package: CPack's DEB generator over the same install rules as
# 'cmake --install' (README.md says why CPack rather than debian/ and dpkg-buildpackage).
#   cmake --build build && (cd build && cpack -G DEB)    ->  build/mxsurvey_VERSION_ARCH.deb
# Depends are what dpkg-shlibdeps finds the binary linked against (libssl3,
# libevent-*-2.1-7, libc-ares2, libpq5, libjansson4, libc6) plus what it runs: PostgreSQL's
# server programs for the embedded cluster, the Public Suffix List, adduser for the user.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mxsurvey)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "mxsurvey maintainers <mxsurvey@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "measure how mail servers use STARTTLS")
set(CPACK_PACKAGE_DESCRIPTION
    "mxsurvey resolves mail domains, dials port 25 on every MX address, sends EHLO and\n\
STARTTLS, completes a TLS handshake and records the protocol, cipher, certificate chain\n\
and its verdict (trust, expiry, name match, DANE), then says QUIT; it never sends mail.\n\
Results go to JSON lines and PostgreSQL, where SQL views turn them into statistics.\n\
The package adds the system user mxsurvey (home /var/lib/mxsurvey) and systemd timers\n\
for nightly surveys, which are not enabled.")
# DESTDIR staging: the units and /etc/mxsurvey are placed for prefix /usr, as they are
# installed (contrib/CMakeLists.txt)
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, postgresql, publicsuffix")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "zmap, bash-completion")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/contrib/debian/conffiles
    ${PROJECT_SOURCE_DIR}/contrib/debian/postinst
    ${PROJECT_SOURCE_DIR}/contrib/debian/prerm
    ${PROJECT_SOURCE_DIR}/contrib/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
