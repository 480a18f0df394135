//! `anteroom demo`: the gateway in front of a built-in sample ticket shop, on localhost,
//! so a newcomer sees anteroom work with nothing of their own; simulated buyers make a
//! line that moves while the same crowd goes straight at a twin of the shop
//! ([`compare`]: the before and after), and the terminal shows one summary line
//! (`summary`) rather than the access log.

mod compare;
pub mod fragile;
mod summary;

use crate::app::{serve, AppError, Listeners};
use crate::config::Config;
use crate::response::{self, full, Body};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The shop behind the demo's gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shop {
    /// The sample ticket shop: event pages, and a checkout that takes four buyers at once.
    Sample,
    /// The fragile shop ([`fragile::Shape::SEED`]): every request slows down as more are
    /// in flight, as the shop anteroom was built for did.
    Fragile,
}

/// How many checkouts the sample shop can process at once: it is meant to be fragile.
const SHOP_CHECKOUT_CAPACITY: usize = 4;
const SHOP_CHECKOUT_TIME: Duration = Duration::from_millis(200);

const EVENTS: [(&str, &str, &str); 3] = [
    ("1", "The Exclusive Show", "Friday, 20:00 — Arena"),
    ("2", "Late Night Jazz", "Saturday, 22:00 — Club Blue"),
    ("3", "Sunday Matinee", "Sunday, 15:00 — Old Theatre"),
];

/// Starts the sample shop on an ephemeral port and returns its address.
pub async fn start_shop() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    serve_shop(listener);
    Ok(addr)
}

/// Serves the sample shop on `listener` until the runtime ends (`anteroom shop`: the
/// shop behind the compose file's gateways).
pub fn serve_shop(listener: TcpListener) {
    let checkout = Arc::new(Semaphore::new(SHOP_CHECKOUT_CAPACITY));
    serve_forever(listener, move |req| {
        let checkout = checkout.clone();
        async move { shop_page(req, &checkout).await }
    });
}

/// Serves `listener` (HTTP/1.1 and h2) until the runtime ends, each request answered by
/// `answer`: the sample shops' server.
fn serve_forever<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let answered = answer(req);
                    async move { Ok::<_, Infallible>(answered.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}

async fn shop_page(req: Request<Incoming>, checkout: &Semaphore) -> Response<Body> {
    let path = req.uri().path();
    if path == "/" {
        let list: String = EVENTS
            .iter()
            .map(|(id, name, when)| format!("<li><a href=\"/events/{id}\">{name}</a> — {when}</li>"))
            .collect();
        return html(StatusCode::OK, "Tickets", &format!("<h1>Sample Ticket Shop</h1><ul>{list}</ul>"));
    }
    if let Some(id) = path.strip_prefix("/events/") {
        return match EVENTS.iter().find(|(event, _, _)| *event == id) {
            Some((id, name, when)) => html(
                StatusCode::OK,
                name,
                &format!(
                    "<h1>{name}</h1><p>{when}</p><form method=\"post\" action=\"/checkout?event={id}\">\
                     <button>Buy a ticket</button></form><p><a href=\"/\">All events</a></p>"
                ),
            ),
            None => html(StatusCode::NOT_FOUND, "Not found", "<h1>No such event</h1>"),
        };
    }
    if path == "/checkout" && req.method() == Method::POST {
        // A legacy checkout: slow, and it falls over when too many buyers arrive at once.
        let Ok(_slot) = checkout.try_acquire() else {
            return html(StatusCode::SERVICE_UNAVAILABLE, "Overloaded", "<h1>The shop is overloaded</h1>");
        };
        tokio::time::sleep(SHOP_CHECKOUT_TIME).await;
        let mut booked =
            html(StatusCode::OK, "Thank you", "<h1>Your ticket is booked</h1><p><a href=\"/\">Back</a></p>");
        // Done buying: the shop gives the buyer's place in the shop to the next in line.
        booked.headers_mut().insert("x-anteroom-command", HeaderValue::from_static("revoke"));
        return booked;
    }
    response::text(StatusCode::NOT_FOUND, "not found")
}

fn html(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><body>{body}</body></html>"
    );
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// The demo's room.
const ROOM: &str = "show";

/// The demo room's limits, which the banner tells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Buyers inside at once.
    pub capacity: u32,
    /// Admissions a minute: the rate, or the ceiling of an adaptive room.
    pub admit_per_minute: u32,
    pub adaptive: bool,
}

impl Limits {
    /// The sample shop: three buyers at once, twenty a minute, so that one person sees a
    /// line move. The fragile shop: what the story's shop needed — an adaptive rate that
    /// follows its health, between a floor and a ceiling far above what it can take.
    pub(crate) fn of(shop: Shop) -> Self {
        match shop {
            Shop::Sample => Self { capacity: 3, admit_per_minute: 20, adaptive: false },
            Shop::Fragile => Self { capacity: 2_000, admit_per_minute: 6_000, adaptive: true },
        }
    }
}

/// The demo's gateway config: one room on the memory store covering the event pages and
/// the checkout (the event list stays open); small fixed limits in front of the sample
/// shop, adaptive admission (target 250 ms) in front of the fragile one.
pub fn config(shop: Shop, shop_addr: SocketAddr, listen: SocketAddr, admin: SocketAddr, admin_token: &str) -> Config {
    let Limits { capacity, admit_per_minute, adaptive } = Limits::of(shop);
    let (origin, admission) = if adaptive {
        (
            "max_requests_per_second = 500\nburst = 50\nmax_in_flight = 64\nmax_wait = \"5s\"\nresponse_timeout = \"10s\"\n",
            "admission = \"adaptive\"\ntarget_origin_latency = \"250ms\"\n",
        )
    } else {
        ("max_requests_per_second = 20\nburst = 5\nmax_in_flight = 8\nmax_wait = \"2s\"\n", "")
    };
    let text = format!(
        "[listen]\nhttp = \"{listen}\"\nadmin = \"{admin}\"\n[admin]\ntoken = \"{admin_token}\"\n\
         [origin]\nurl = \"http://{shop_addr}\"\n{origin}\
         [store]\nbackend = \"memory\"\n\
         [[rooms]]\nname = \"{ROOM}\"\ntitle = \"The Exclusive Show\"\npaths = [\"/events\", \"/checkout\"]\n{admission}\
         admit_per_minute = {admit_per_minute}\nmax_active_users = {capacity}\nsession_duration = \"2m\"\nabandon_after = \"30s\"\n"
    );
    // The text above is fixed apart from addresses, which are always valid here.
    Config::from_toml(&text, []).unwrap_or_else(|e| panic!("demo config is invalid: {e}"))
}

/// Starts a shop of this kind on an ephemeral port of localhost.
async fn start(shop: Shop) -> std::io::Result<SocketAddr> {
    match shop {
        Shop::Sample => start_shop().await,
        Shop::Fragile => {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            Ok(fragile::FragileShop::serve(listener, fragile::Shape::SEED)?.addr)
        }
    }
}

/// Runs the demo until `shutdown` resolves. `log_file`: where the access log goes, when
/// not to the terminal (said in the banner).
pub async fn run(
    listen: SocketAddr,
    admin: SocketAddr,
    crowd: usize,
    shop: Shop,
    log_file: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let bind_error = |source| AppError::Bind { key: "demo shop", addr: SocketAddr::from(([127, 0, 0, 1], 0)), source };
    let shop_addr = start(shop).await.map_err(bind_error)?;
    // A token of this run's own, for the console on localhost (printed in the banner).
    let admin_token = crate::token::generate_key(crate::token::TokenAlgorithm::Hs256)
        .map(|key| key.trim().chars().filter(char::is_ascii_alphanumeric).take(24).collect::<String>())
        .unwrap_or_else(|_| format!("demo-{:x}", crate::time::unix_us()));
    let config = config(shop, shop_addr, listen, admin, &admin_token);
    let listeners = Listeners::bind(&config).await?;
    let gateway = listeners.http.as_ref().and_then(|l| l.local_addr().ok());
    let admin = listeners.admin.local_addr().ok();
    let presenter = match (gateway, admin) {
        (Some(gateway), Some(admin)) => {
            let (news, headlines) = tokio::sync::mpsc::unbounded_channel();
            if crowd > 0 {
                let twin = start(shop).await.map_err(bind_error)?;
                tokio::spawn(compare::before_and_after(gateway, twin, crowd, news));
            }
            let presenter = summary::Presenter {
                gateway,
                admin,
                shop: shop_addr,
                crowd,
                news: headlines,
                room: ROOM,
                limits: Limits::of(shop),
                log_file,
                admin_token,
            };
            Some(tokio::spawn(presenter.run()))
        }
        _ => None,
    };
    let served = serve(config, listeners, shutdown).await;
    if let Some(presenter) = presenter {
        presenter.abort();
        println!();
    }
    served
}
