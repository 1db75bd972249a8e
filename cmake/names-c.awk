# Formats the sorted output of names.awk as the C table asr/redact.c searches.
BEGIN { print "/* Generated from Debian's wamerican word list (cmake/names.awk): do not edit. */"
        print "#include <stddef.h>"
        print "typedef struct { const char *w; unsigned char name_only; } ld_name_entry;"
        print "const ld_name_entry ld_names[] = {" }
{ printf "    {\"%s\", %s},\n", $1, $2; n++ }
END { print "};"; printf "const size_t ld_names_count = %d;\n", n }
