target "x" { context = 1 }
