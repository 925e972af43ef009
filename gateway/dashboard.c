/* The dashboard page, gateway/dashboard.html, built into the daemon as it
 * is (the Makefile makes this object depend on it). */
#include "metrics_http.h"

__asm__(".section .rodata\n"
	".global mf_dashboard_html\n"
	".type mf_dashboard_html, @object\n"
	"mf_dashboard_html:\n"
	".incbin \"gateway/dashboard.html\"\n"
	".global mf_dashboard_html_end\n"
	".type mf_dashboard_html_end, @object\n"
	"mf_dashboard_html_end:\n"
	".byte 0\n"
	".previous\n");
