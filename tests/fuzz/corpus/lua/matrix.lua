for _, c in ipairs(matrix { a = { 1, 2 }, b = { "x", "y" }, exclude = { { a = 1 } }, include = { { a = 3, b = "z", c = true } } }) do
  target("t-" .. c.a .. "-" .. c.b) { args = { C = tostring(c.c) } }
end
group "default" { "t-2-x", "t-3-z" }
