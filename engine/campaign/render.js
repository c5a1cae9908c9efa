(function(w,d){var s=w.shoptrail;s=s&&s.st||s;if(!s||s.cd)return;
var L=w.localStorage,A=[],M,sent={},url=location.href,
K=function(i){return i.c+"/"+i.g},
get=function(k){try{return L.getItem(k)}catch(e){return null}},
put=function(k,v){try{L.setItem(k,v)}catch(e){}},
rid=function(){return w.crypto&&crypto.randomUUID?crypto.randomUUID().replace(/-/g,""):Math.random().toString(36).slice(2)+Date.now().toString(36)},
send=function(t,i){if(s.pvw)return;var z=new Date().toISOString(),
b=JSON.stringify({sent_at:z,events:[{id:rid(),type:t,time:z,anonymous_id:get("shoptrail_aid"),session_id:get("shoptrail_sid"),url:location.href,
props:{campaign_id:i.c,group:i.g,variation:i.v}}]});put("shoptrail_last",""+Date.now());
try{if(!(navigator.sendBeacon&&navigator.sendBeacon(s.e+"/t",b)))fetch(s.e+"/t",{method:"POST",body:b,keepalive:true})["catch"](function(){})}catch(e){}},
goal=function(i){var g=(get("shoptrail_cg")||"").split(",").filter(Boolean);if(g.indexOf(K(i))<0){g.push(K(i));put("shoptrail_cg",g.slice(-100).join(","))}},
count=function(i){var sid=get("shoptrail_sid"),c;try{c=JSON.parse(get("shoptrail_cs")||"{}")}catch(e){c={}}
if(c.s!==sid)c={s:sid,n:{}};c.n[K(i)]=(c.n[K(i)]||0)+1;put("shoptrail_cs",JSON.stringify(c))},
wrap=function(i){var x=d.createElement("div");x.setAttribute("data-shoptrail",K(i));x.style.display="contents";x.innerHTML=i.html||"";
x.addEventListener("click",function(){if(!i.clk){i.clk=1;send("campaign_click",i);if(i.goal==="click")goal(i)}},true);return x},
close=function(i){if(i.n&&i.n.parentNode)i.n.parentNode.removeChild(i.n);send("campaign_close",i);if(i.goal==="close")goal(i)},
overlay=function(i){var o=d.createElement("div"),b=d.createElement("button"),st=o.style,pop=i.mode==="popup";
o.className="shoptrail-overlay shoptrail-"+i.mode;o.setAttribute("data-shoptrail-overlay",K(i));
st.position="fixed";st.zIndex=2147483000;st.left=pop?"50%":"0";st.right=pop?"auto":"0";st.background="#fff";st.boxShadow="0 2px 16px rgba(0,0,0,.3)";st.padding="1rem 2.5rem 1rem 1rem";
if(pop){st.top="50%";st.transform="translate(-50%,-50%)";st.maxWidth="90vw";st.borderRadius="8px";o.setAttribute("role","dialog")}else if(i.mode==="bar_top")st.top="0";else st.bottom="0";
b.type="button";b.className="shoptrail-close";b.setAttribute("aria-label","Close");b.textContent="\u00d7";
b.style.cssText="position:absolute;top:.3rem;right:.5rem;border:0;background:none;font-size:1.5rem;cursor:pointer;color:inherit";
b.addEventListener("click",function(e){e.stopPropagation();close(i)});o.appendChild(wrap(i));o.appendChild(b);(d.body||d.documentElement).appendChild(o);return o},
place=function(i){if(i.ctl)return 1;if(i.sel==null||i.sel==="")return i.n=overlay(i);var el;try{el=d.querySelector(i.sel)}catch(e){return 1}
if(!el)return 0;if(i.n&&i.n.isConnected&&(i.mode!=="replace"?1:el.firstChild===i.n&&el.childNodes.length===1))return i.n;var x=wrap(i);
switch(i.mode){case"replace":el.textContent="";el.appendChild(x);break;case"before":el.parentNode.insertBefore(x,el);break;
case"after":el.parentNode.insertBefore(x,el.nextSibling);break;case"prepend":el.insertBefore(x,el.firstChild);break;default:el.appendChild(x)}
return i.n=x},
show=function(i){if(i.done)return;var r=place(i);if(!r)return;i.done=1;
if(!s.pvw){send("campaign_impression",i);count(i);if(i.goal==="shown")goal(i)}},
watch=function(){if(M||!w.MutationObserver)return;M=new MutationObserver(function(){for(var j=0;j<A.length;j++){var i=A[j];
if(i.armed&&!i.done)show(i);else if(i.done&&i.sel&&!i.ctl)place(i)}});
M.observe(d.documentElement,{childList:true,subtree:true})},
arm=function(i){var t=i.trig||{},k=t.kind,go=function(){if(i.gone)return;i.armed=1;show(i)};
if(k==="delay")setTimeout(go,t.value*1e3);
else if(k==="scroll"){var f=function(){var h=d.documentElement,p=(w.scrollY+w.innerHeight)/Math.max(1,h.scrollHeight)*100;if(p>=t.value){w.removeEventListener("scroll",f);go()}};w.addEventListener("scroll",f,{passive:true});f()}
else if(k==="exit_intent"){var S=[],
off=function(){d.removeEventListener("mouseout",x);w.removeEventListener("scroll",y);d.removeEventListener("visibilitychange",v)},
x=function(e){if(e.clientY<=0&&!e.relatedTarget){off();go()}},
y=function(){var n=w.scrollY,t=Date.now(),m=n,j;S.push([t,n]);while(S[0][0]<t-250)S.shift();for(j=0;j<S.length;j++)m=Math.max(m,S[j][1]);if(m-n>=120){off();go()}},
v=function(){if(d.visibilityState==="hidden"){off();go()}};
d.addEventListener("mouseout",x);if(w.matchMedia&&w.matchMedia("(pointer:coarse)").matches){w.addEventListener("scroll",y,{passive:true});d.addEventListener("visibilitychange",v)}}
else go()},
clear=function(keep){A=A.filter(function(i){if(keep[K(i)+"|"+i.v]&&i.done&&(!i.n||i.n.isConnected))return 1;
if(i.n&&i.n.parentNode){if(i.mode==="replace"&&i.orig!=null){i.n.parentNode.innerHTML=i.orig}else i.n.parentNode.removeChild(i.n)}i.gone=1;return 0})},
apply=function(show_){var keep={};show_.forEach(function(i){keep[K(i)+"|"+i.v]=1});clear(keep);
var have={};A.forEach(function(i){have[K(i)+"|"+i.v]=1});
show_.forEach(function(i){if(have[K(i)+"|"+i.v])return;if(i.mode==="replace"&&i.sel){try{var el=d.querySelector(i.sel);if(el)i.orig=el.innerHTML}catch(e){}}
A.push(i);arm(i)});watch()};
s.cd=function(D){try{if(D.preview){s.pvw=1;preview(D.preview)}else apply(D.show||[])}catch(e){}s.uh&&s.uh()};
var preview=function(p){var lat=w.shoptrailPreviewLatency=[],ws,open=function(){ws=new WebSocket(s.e.replace(/^http/,"ws")+"/c/preview?token="+encodeURIComponent(p.token)+"&pid="+encodeURIComponent(p.pid||""));
var n=0;ws.onmessage=function(m){try{var q=JSON.parse(m.data);apply([]);A=[];apply(q.show||[]);if(q.t&&n++)requestAnimationFrame(function(){lat.push(Date.now()-q.t)})}catch(e){}};
ws.onclose=function(e){if(e.code!==1008)setTimeout(open,1e3)}};open();
var b=d.createElement("div");b.textContent="Shoptrail preview";b.style.cssText="position:fixed;left:0;bottom:0;z-index:2147483001;background:#2f6fed;color:#fff;font:12px sans-serif;padding:2px 6px";
(d.body||d.documentElement).appendChild(b)};
var spa=function(){if(location.href===url)return;url=location.href;s.cq&&s.cq()},H=w.history;
["pushState","replaceState"].forEach(function(m){var o=H[m];if(o)H[m]=function(){var r=o.apply(this,arguments);try{spa()}catch(e){}return r}});
w.addEventListener("popstate",spa);if(s.cj)s.cd(s.cj)})(window,document);
