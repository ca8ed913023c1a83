/*
 * The report as one self-contained HTML file: tables written here, charts drawn in the
 * browser as inline SVG by a small script from the same JSON document the json format
 * prints (embedded in the page). No external resource of any kind, so the file can be
 * mailed or archived and opens offline. The script marks <body data-charts="N"> with
 * the number of charts it drew, which the tests read back from a real browser.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "report_model.h"

/*
 * The JSON document inside <script type="application/json">: the HTML parser ends a
 * script block at "</script" and enters its double-escaped state at "<!--" followed by
 * "<script", whatever the type, so no '<' may reach it raw; '>' and '&' likewise, and
 * U+2028/U+2029 for JavaScript parsers older than ES2019. These characters occur only
 * inside JSON strings, where \uXXXX means the same character: JSON.parse gives back
 * the original text.
 */
static void script_json(const char *s, FILE *out)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '<' || c == '>' || c == '&')
			fprintf(out, "\\u%04x", c);
		else if (c == 0xe2 && (unsigned char)s[1] == 0x80 &&
		         ((unsigned char)s[2] == 0xa8 || (unsigned char)s[2] == 0xa9)) {
			fprintf(out, "\\u%04x", (unsigned char)s[2] == 0xa8 ? 0x2028 : 0x2029);
			s += 2;
		} else
			fputc(c, out);
	}
}

static const char css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;"
	"background:#f5f6f8}"
	"header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}"
	"header p{margin:4px 0 0;color:#b9c0cc}"
	"main{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px;"
	"padding:18px 28px}"
	"section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);"
	"padding:14px 18px;overflow:auto}"
	"section h2{font-size:15px;margin:0 0 2px}section p.den{margin:0 0 10px;color:#5f6b7a;"
	"font-size:12px}"
	"table{border-collapse:collapse;width:100%;font-size:12.5px}"
	"th,td{padding:3px 8px;border-bottom:1px solid #e6e8ec;text-align:left;white-space:nowrap}"
	"td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
	"th{color:#5f6b7a;font-weight:600}"
	".chart svg{display:block;width:100%;height:auto;margin-bottom:10px}"
	".chart text{font:11px system-ui,sans-serif;fill:#1d2330}"
	".chart .axis{stroke:#c5cad3;stroke-width:1}.empty{color:#8a94a3;font-style:italic}";

/*
 * Chart drawing. bars: one horizontal bar per row, 0-100 %. grouped: per row a group of
 * bars, one per value column. lines: x = rows in order, one polyline per value column.
 * Every drawn mark carries data-label and data-value.
 */
static const char js[] =
	"(function(){\n"
	"var NS='http://www.w3.org/2000/svg';\n"
	"var PAL=['#2f6fde','#e0813a','#2aa876','#b54bd1','#d64545','#7a8899'];\n"
	"function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);"
	"if(p)p.appendChild(e);return e;}\n"
	"function txt(p,x,y,s,a){var t=el('text',Object.assign({x:x,y:y},a||{}),p);t.textContent=s;return t;}\n"
	"function num(v){return typeof v==='number'&&isFinite(v)?v:null;}\n"
	"function svg(host,w,h){return el('svg',{viewBox:'0 0 '+w+' '+h,width:w,height:h,"
	"role:'img',class:'chart-svg'},host);}\n"
	"function legend(s,g,x,y){s.chart.values.forEach(function(c,i){"
	"el('rect',{x:x+i*150,y:y,width:10,height:10,fill:PAL[i%PAL.length]},g);"
	"txt(g,x+i*150+14,y+9,s.columns[c]);});}\n"
	"function bars(s,host){var rows=s.rows.filter(function(r){return num(r[s.chart.values[0]])!==null;});"
	"if(!rows.length)return 0;var g=s.chart.values.length,bh=14,gap=8,W=560;"
	"var lw=Math.min(260,12+6.6*Math.max.apply(null,rows.map(function(r){return String(r[s.chart.label]).length;})));"
	"var gh=g*bh+gap,H=rows.length*gh+(g>1?26:6);var v=svg(host,W,H);"
	"rows.forEach(function(r,i){var y=i*gh+4;txt(v,lw-6,y+g*bh/2+4,String(r[s.chart.label]),"
	"{'text-anchor':'end'});s.chart.values.forEach(function(c,j){var val=num(r[c]);if(val===null)return;"
	"var w=Math.max(1,(W-lw-60)*Math.min(val,100)/100);"
	"el('rect',{x:lw,y:y+j*bh,width:w,height:bh-2,fill:PAL[j%PAL.length],class:'bar',"
	"'data-label':String(r[s.chart.label]),'data-value':String(val)},v);"
	"txt(v,lw+w+4,y+j*bh+bh-4,val.toFixed(2)+' %');});});"
	"el('line',{x1:lw,y1:0,x2:lw,y2:rows.length*gh,class:'axis'},v);"
	"if(g>1)legend(s,v,lw,rows.length*gh+8);return 1;}\n"
	"function lines(s,host){var rows=s.rows;if(!rows.length)return 0;var W=520,H=230,L=40,R=12,T=10,B=52;"
	"var v=svg(host,W,H);var iw=W-L-R,ih=H-T-B;"
	"[0,25,50,75,100].forEach(function(p){var y=T+ih*(1-p/100);"
	"el('line',{x1:L,y1:y,x2:W-R,y2:y,class:'axis'},v);txt(v,L-4,y+4,p+'%',{'text-anchor':'end'});});"
	"function X(i){return L+(rows.length>1?iw*i/(rows.length-1):iw/2);}"
	"rows.forEach(function(r,i){txt(v,X(i),T+ih+14,String(r[s.chart.label]),{'text-anchor':'middle'});});"
	"s.chart.values.forEach(function(c,j){var pts=[];rows.forEach(function(r,i){var val=num(r[c]);"
	"if(val===null)return;var y=T+ih*(1-Math.min(val,100)/100);pts.push(X(i)+','+y);"
	"el('circle',{cx:X(i),cy:y,r:3.5,fill:PAL[j%PAL.length],class:'point',"
	"'data-label':String(r[s.chart.label]),'data-value':String(val)},v);});"
	"if(pts.length>1)el('polyline',{points:pts.join(' '),fill:'none',stroke:PAL[j%PAL.length],"
	"'stroke-width':2,class:'series'},v);});legend(s,v,L,H-18);return 1;}\n"
	"var data=JSON.parse(document.getElementById('mxs-data').textContent);var n=0;\n"
	"data.sections.forEach(function(s){var host=document.getElementById('chart-'+s.id);"
	"if(!host)return;var k=s.chart.kind;"
	"var drawn=k==='lines'?lines(s,host):(k==='bars'||k==='grouped')?bars(s,host):0;"
	"if(!drawn)host.innerHTML='<p class=\"empty\">no data to chart</p>';n+=drawn;});\n"
	"document.body.setAttribute('data-charts',String(n));\n"
	"})();\n";

static void table(const struct report_section *s, FILE *out)
{
	int nf = PQnfields(s->res), nt = PQntuples(s->res);
	if (nt == 0) {
		fputs("<p class=\"empty\">no data</p>\n", out);
		return;
	}
	fputs("<table><thead><tr>", out);
	for (int j = 0; j < nf; j++) {
		fprintf(out, "<th%s>", report_numeric(s, j) ? " class=\"num\"" : "");
		cli_html_esc(PQfname(s->res, j), out);
		fputs("</th>", out);
	}
	fputs("</tr></thead><tbody>\n", out);
	for (int i = 0; i < nt; i++) {
		fputs("<tr>", out);
		for (int j = 0; j < nf; j++) {
			fprintf(out, "<td%s>", report_numeric(s, j) ? " class=\"num\"" : "");
			cli_html_esc(PQgetisnull(s->res, i, j) ? "-" : PQgetvalue(s->res, i, j), out);
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</tbody></table>\n", out);
}

int report_html(const struct report *r, FILE *out)
{
	json_t *doc = report_to_json(r);
	/* written through script_json: no '<', '>', '&' can appear inside the data block */
	char *data = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12))
	                 : NULL;
	json_decref(doc);
	if (data == NULL)
		return -1;
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	             "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
	             "<title>mxsurvey report: scan %lld</title>\n<style>%s</style></head>\n<body>\n",
	        (long long)r->scan, css);
	fprintf(out, "<header><h1>mxsurvey report: scan %lld", (long long)r->scan);
	if (r->scan_label[0]) {
		fputs(" (", out);
		cli_html_esc(r->scan_label, out);
		fputs(")", out);
	}
	fputs("</h1><p>started ", out);
	cli_html_esc(r->scan_started, out);
	if (r->compare)
		fprintf(out, "; compared with scan %lld", (long long)r->compare);
	fputs("</p></header>\n<main>\n", out);
	for (int k = 0; k < r->nsections; k++) {
		const struct report_section *s = &r->sections[k];
		fprintf(out, "<section id=\"s-%s\"><h2>", s->id);
		cli_html_esc(s->title, out);
		fputs("</h2><p class=\"den\">share of: ", out);
		cli_html_esc(s->denominator, out);
		fputs("</p>\n", out);
		if (s->chart != CHART_NONE)
			fprintf(out, "<div class=\"chart\" id=\"chart-%s\" data-kind=\"%s\"></div>\n", s->id,
			        report_chart_names[s->chart]);
		table(s, out);
		fputs("</section>\n", out);
	}
	fputs("</main>\n<script type=\"application/json\" id=\"mxs-data\">", out);
	script_json(data, out);
	fprintf(out, "</script>\n<script>%s</script>\n</body></html>\n", js);
	free(data);
	return ferror(out) ? -1 : 0;
}
