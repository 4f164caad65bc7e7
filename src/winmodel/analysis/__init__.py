"""Reading the pipeline as a whole: where we win, the forecast and its replay, figures."""
