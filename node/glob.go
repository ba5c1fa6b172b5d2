package node

// globMatch is Redis's glob matching (stringmatchlen in util.c), ported so
// that KEYS and SCAN MATCH select exactly the keys Redis would: '*', '?',
// '[...]' with ranges and '^', and '\' escapes. path.Match differs ('/' is
// special, malformed classes are errors), so no library fits.
func globMatch(pattern, str []byte, nocase bool) bool {
	skip := false
	return globMatchImpl(pattern, str, nocase, &skip, 0)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func globMatchImpl(pattern, str []byte, nocase bool, skipLonger *bool, nesting int) bool {
	// Protection against abusive patterns, as in Redis.
	if nesting > 1000 {
		return false
	}
	// at reads the pattern as C does, with a NUL past its end.
	at := func(i int) byte {
		if i < len(pattern) {
			return pattern[i]
		}
		return 0
	}
	eq := func(a, b byte) bool {
		if nocase {
			return lower(a) == lower(b)
		}
		return a == b
	}
	for len(pattern) > 0 && len(str) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && at(1) == '*' {
				pattern = pattern[1:]
			}
			if len(pattern) == 1 {
				return true
			}
			for len(str) > 0 {
				if globMatchImpl(pattern[1:], str, nocase, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				str = str[1:]
			}
			*skipLonger = true
			return false
		case '?':
			str = str[1:]
		case '[':
			pattern = pattern[1:]
			not := at(0) == '^'
			if not {
				pattern = pattern[1:]
			}
			match := false
			for {
				if at(0) == '\\' && len(pattern) >= 2 {
					pattern = pattern[1:]
					if pattern[0] == str[0] {
						match = true
					}
				} else if at(0) == ']' {
					break
				} else if len(pattern) == 0 {
					// Unterminated class: step back so the shared advance
					// below lands at the end.
					pattern = nil
					break
				} else if len(pattern) >= 3 && pattern[1] == '-' {
					start, end, c := pattern[0], pattern[2], str[0]
					if start > end {
						start, end = end, start
					}
					if nocase {
						start, end, c = lower(start), lower(end), lower(c)
					}
					pattern = pattern[2:]
					if c >= start && c <= end {
						match = true
					}
				} else if eq(pattern[0], str[0]) {
					match = true
				}
				pattern = pattern[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			str = str[1:]
		case '\\':
			if len(pattern) >= 2 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if !eq(pattern[0], str[0]) {
				return false
			}
			str = str[1:]
		}
		if len(pattern) > 0 {
			pattern = pattern[1:]
		}
		if len(str) == 0 {
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			break
		}
	}
	return len(pattern) == 0 && len(str) == 0
}
