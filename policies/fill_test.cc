// placeholder: fill engine tests
