# Turns host/cli/report.html into C: the text before the line @@DATA@@ becomes
# report_page_head, the text after it report_page_tail (used by host/cli/cli_report.c).
BEGIN {
    print "/* generated from host/cli/report.html by scripts/embed.awk: edit that file */"
    print "const char report_page_head[] ="
}
/^@@DATA@@$/ { print "    \"\";"; print "const char report_page_tail[] ="; next }
{
    gsub(/\\/, "\\\\")
    gsub(/"/, "\\\"")
    print "    \"" $0 "\\n\""
}
END { print "    \"\";" }
