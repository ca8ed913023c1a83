/* placeholder so the library has a member; removed by its owner */
int mxs_scanner_placeholder_(void);
int mxs_scanner_placeholder_(void) { return 0; }
