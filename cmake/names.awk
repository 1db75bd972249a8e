# Writes a C table of the proper names in a word list (Debian's wamerican,
# /usr/share/dict/american-english): every capitalised entry of letters only,
# lower-cased, with whether the list also has it as a common word ("mark").
# cmake/names.sh sorts it and formats it as C (names-c.awk).
/^[a-z]+$/ { common[$0] = 1; next }
/^[A-Z][a-z]+$/ { name[tolower($0)] = 1 }
END { for (w in name) printf "%s %d\n", w, (w in common) ? 0 : 1 }
