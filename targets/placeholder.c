/* placeholder so the library has a member; removed by its owner */
int mxs_targets_placeholder_(void);
int mxs_targets_placeholder_(void) { return 0; }
