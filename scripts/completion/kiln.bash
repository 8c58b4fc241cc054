# bash completion for kiln: commands, each command's flags, a few flag
# values, and the targets and groups of kiln.lua (`kiln ls -q`).
# Flags come from `kiln help COMMAND`, so they follow the kiln that is
# completed. Needs only bash (no bash-completion helpers); installed as
# PREFIX/share/bash-completion/completions/kiln by `make install`.

# The option lines of `kiln help CMD`: "-f", "--file" ... one per line;
# with "value", only the options that take a value.
_kiln_flags()
{
	local kiln=$1 cmd=$2 which=${3:-all}
	"$kiln" help "$cmd" 2>/dev/null | awk -v which="$which" '
		/^ +-/ {
			line = $0
			sub(/^ +/, "", line)
			n = split(line, w, /  +/)     # options, then the description
			takes = w[1] ~ /--[a-z0-9-]+ [^ ]/
			m = split(w[1], f, /[ ,]+/)
			for (i = 1; i <= m; i++)
				if (f[i] ~ /^-[a-zA-Z]$|^--[a-z0-9-]+$/ &&
				    (which == "all" || takes))
					print f[i]
		}' | sort -u
}

_kiln()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev= kiln=${COMP_WORDS[0]} cmd= file= i w
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	command -v "$kiln" >/dev/null 2>&1 || kiln=kiln
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-f | --file) file=${COMP_WORDS[i + 1]} ;;
		--file=*) file=${w#--file=} ;;
		esac
		# Global options take no value, so the command is the first word
		# that is not an option.
		[[ -z $cmd && $w != -* ]] && cmd=$w
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--debug -D --help -h --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$("$kiln" help 2>/dev/null |
				awk '/^Commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } c && /^$/ { exit }')" -- "$cur"))
		fi
		return 0
	fi

	case $prev in
	-f | --file | --tlscacert | --tlscert | --tlskey | --signing-key)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	--tlsdir | --source-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0 ;;
	--progress)
		COMPREPLY=($(compgen -W "auto tty plain json quiet" -- "$cur"))
		return 0 ;;
	--format)
		COMPREPLY=($(compgen -W "table json text" -- "$cur"))
		return 0 ;;
	--backend)
		COMPREPLY=($(compgen -W "buildkit docker" -- "$cur"))
		return 0 ;;
	-*)
		# Any other option that takes a value: nothing to offer.
		if [[ $prev != *=* ]] && _kiln_flags "$kiln" "$cmd" value | grep -qxF -- "$prev"; then
			return 0
		fi ;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_kiln_flags "$kiln" "$cmd")" -- "$cur"))
		return 0
	fi

	local targets=
	case $cmd in
	build | print | print-llb | ls)
		# Targets and groups of the script (-f FILE.lua, else ./kiln.lua).
		if [[ $file == *.lua || ( -z $file && -f kiln.lua ) ]]; then
			targets=$("$kiln" ls -q ${file:+-f "$file"} 2>/dev/null)
		fi
		[[ $cmd == ls ]] && return 0
		COMPREPLY=($(compgen -W "$targets" -- "$cur"))
		# build also takes a context directory (or a file for print-llb).
		case $cmd in
		build) COMPREPLY+=($(compgen -d -- "$cur")) ;;
		print-llb) COMPREPLY+=($(compgen -f -- "$cur")) ;;
		esac ;;
	help)
		COMPREPLY=($(compgen -W "$("$kiln" help 2>/dev/null |
			awk '/^Commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } c && /^$/ { exit }')" -- "$cur")) ;;
	lint) COMPREPLY=($(compgen -d -- "$cur")) ;;
	replay) COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
	return 0
}

complete -F _kiln kiln
