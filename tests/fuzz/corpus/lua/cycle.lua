target "a" { depends = { "b" } }
target "b" { depends = { "a" } }
group "g" { "g" }
