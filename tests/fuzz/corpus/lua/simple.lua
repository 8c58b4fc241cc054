target "app" { context = ".", tags = { "app:1" }, args = { A = kiln.vars.VERSION or "x" } }
