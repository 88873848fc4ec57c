//! An HTTP CONNECT proxy on loopback that records each tunnel it opens.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct ConnectProxy {
    pub url: String,
    /// The `CONNECT` targets, in order, with the Proxy-Authorization header if one came.
    pub tunnels: Arc<Mutex<Vec<(String, Option<String>)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ConnectProxy {
    pub async fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let recorded = tunnels.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let _ = tunnel(client, recorded).await;
                });
            }
        });
        ConnectProxy { url, tunnels, _task: task }
    }
}

async fn tunnel(client: TcpStream, recorded: Arc<Mutex<Vec<(String, Option<String>)>>>) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut request_line = String::new();
    client.read_line(&mut request_line).await?;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        client.read_line(&mut header).await?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("proxy-authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
    recorded.lock().unwrap().push((target.clone(), authorization));
    // Only loopback targets: a test proxy must not reach anything else.
    if !target.starts_with("127.0.0.1:") {
        client.get_mut().write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(&target).await?;
    client.get_mut().write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    let mut client = client.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
