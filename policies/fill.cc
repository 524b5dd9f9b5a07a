// placeholder: the fill engine (see fill.h)
