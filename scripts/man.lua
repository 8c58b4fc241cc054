-- pandoc filter for kiln(1) (Makefile, target man): the page's sections
-- (level-1 headings after --shift-heading-level-by=-1) in upper case, as
-- man pages have them; inline code in them too.
local function upper(el)
	if el.t == "Str" or el.t == "Code" then
		el.text = el.text:upper()
	end
	return el
end

function Header(h)
	if h.level == 1 then
		return pandoc.walk_block(h, { Str = upper, Code = upper })
	end
end
