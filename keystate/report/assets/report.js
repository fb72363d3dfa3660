(function(){
var table=document.getElementById('key-table');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var q=document.getElementById('q'),mgr=document.getElementById('manager'),
flag=document.getElementById('flagged'),shown=document.getElementById('shown');
function apply(){var text=q.value.toLowerCase(),m=mgr.value,f=flag.checked,n=0;
rows.forEach(function(r){var ok=(!text||r.textContent.toLowerCase().indexOf(text)>=0)&&
(!m||r.getAttribute('data-manager')===m)&&(!f||r.getAttribute('data-findings')!=='0');
r.hidden=!ok;if(ok)n++;});shown.textContent=n+' of '+rows.length+' keys shown';}
[q,mgr,flag].forEach(function(el){el.addEventListener('input',apply);el.addEventListener('change',apply);});
var heads=table.tHead.rows[0].cells;
Array.prototype.forEach.call(heads,function(th,i){th.querySelector('button').addEventListener('click',function(){
var asc=th.getAttribute('aria-sort')!=='ascending',num=th.getAttribute('data-kind')==='num';
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
rows.sort(function(a,b){var x=a.cells[i].getAttribute('data-sort'),y=b.cells[i].getAttribute('data-sort');
if(num){x=x===''?-Infinity:+x;y=y===''?-Infinity:+y;return asc?x-y:y-x;}
return asc?x.localeCompare(y):y.localeCompare(x);});
rows.forEach(function(r){body.appendChild(r);});});});
apply();})();
