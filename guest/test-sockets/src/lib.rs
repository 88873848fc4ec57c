//! Test guest: reaches for `wasi:sockets` itself (not through the host's websocket interface) and says what
//! happened: `wsrun test-sockets.wasm URL 127.0.0.1:PORT` prints `socket: denied: ...` when the sandbox holds.
//! It imports the sockets interfaces directly, as a libc without sockets (wasip1's) could not link `std::net`.

wit_bindgen::generate!({
    inline: "
        package wsrun:test-sockets;
        world sockets {
            import wasi:sockets/instance-network@0.2.12;
            import wasi:sockets/tcp-create-socket@0.2.12;
            import wasi:sockets/tcp@0.2.12;
            import wasi:cli/environment@0.2.12;
            export wasi:cli/run@0.2.12;
        }
    ",
    path: "../../wit",
    world: "wsrun:test-sockets/sockets",
    generate_all,
});

use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

struct Sockets;

impl exports::wasi::cli::run::Guest for Sockets {
    fn run() -> Result<(), ()> {
        let target = wasi::cli::environment::get_arguments().get(2).cloned().unwrap_or_default();
        let addr: std::net::SocketAddrV4 = target.parse().map_err(|_| println!("socket: bad address {target:?}"))?;
        let [a, b, c, d] = addr.ip().octets();
        let address = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: addr.port(), address: (a, b, c, d) });
        let outcome = create_tcp_socket(IpAddressFamily::Ipv4).and_then(|socket| {
            let network = instance_network();
            socket.start_connect(&network, address)?;
            socket.subscribe().block();
            socket.finish_connect().map(|_| ())
        });
        match outcome {
            Ok(()) => println!("socket: connected"),
            Err(e) => println!("socket: denied: {e:?}"),
        }
        Ok(())
    }
}

export!(Sockets);
