(function(w,d,e,h,g,C){if(w.shoptrail)return;var s=w.shoptrail=function(){s.q.push(arguments)};s.q=[];s.e=e;s.h=h;
if(g&&navigator.globalPrivacyControl){s.off=1;return}
try{var L=w.localStorage,n=Date.now(),r=function(){return w.crypto&&crypto.randomUUID?crypto.randomUUID().replace(/-/g,""):Math.random().toString(36).slice(2)+n.toString(36)},
a=L.getItem("shoptrail_aid")||r(),i=L.getItem("shoptrail_sid"),t=+L.getItem("shoptrail_last")||0,z=new Date(n).toISOString();
if(!i||n-t>h*36e5)i=r();L.setItem("shoptrail_aid",a);L.setItem("shoptrail_sid",i);L.setItem("shoptrail_last",""+n);
var b=JSON.stringify({sent_at:z,events:[{id:r(),type:"page_view",time:z,anonymous_id:a,session_id:i,url:location.href,referrer:d.referrer}]});
if(!(navigator.sendBeacon&&navigator.sendBeacon(e+"/t",b)))fetch(e+"/t",{method:"POST",body:b,keepalive:true})["catch"](function(){});s.pv=1;
if(C){var D=d.documentElement,X=d.head||D,H=L.getItem("shoptrail_hide"),S=d.createElement("style"),Q=sessionStorage,E=encodeURIComponent,
G=function(k){return E(L.getItem("shoptrail_"+k)||"")},A=function(k){return E(D.getAttribute("data-shoptrail-"+k)||"")},
P=(/shoptrail_preview=(\w+)/.exec(location.search)||[])[1]||Q.getItem("shoptrail_preview");if(P)Q.setItem("shoptrail_preview",P);
S.innerHTML=H==null?"body{opacity:0!important}":H;X.appendChild(S);s.uh=S.remove.bind(S);setTimeout(s.uh,1e3);
s.cq=function(){fetch(e+"/c/decide?a="+a+"&s="+i+"&u="+E(location.href)+"&r="+E(d.referrer)+"&pt="+A("page")+"&pid="+A("product")+"&k="+G("cs")+"&g="+G("cg")+(P?"&p="+P:""))
.then(function(r){return r.json()}).then(function(j){L.setItem("shoptrail_hide",j.css);if(s.cd)s.cd(j);else if(j.n){s.cj=j;
X.appendChild(d.createElement("script")).src=e+j.r}else s.uh()})["catch"](s.uh)};s.cq()}}catch(x){}
var l=function(){var c=d.createElement("script");c.async=1;c.src=e+"/tracker.js";(d.head||d.documentElement).appendChild(c)};
if(d.readyState==="complete")l();else w.addEventListener("load",l)})(window,document,"{{ENDPOINT}}",{{TIMEOUT_HOURS}},{{GPC}},{{CAMPAIGNS}});
