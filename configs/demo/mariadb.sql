-- Demo MariaDB source for docker-compose.yml: the shop of configs/demo/source.sql as a MySQL
-- application would have it (AUTO_INCREMENT, enum, tinyint(1), JSON, a latin1 column, a table
-- without a key), with fixed, deterministic data: 20,000 customers, 200,000 orders, 200,000
-- order events. The mariadb image runs this file in MARIADB_DATABASE (`shop`) on first start;
-- tests/integration/compose.rs loads it into a fresh database and copies it with howdah.
-- Plain SQL only; rows come from MariaDB's sequence engine (seq_1_to_N).

CREATE TABLE customers (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(120) NOT NULL UNIQUE,
  name varchar(80) CHARACTER SET latin1 NOT NULL,
  vip tinyint(1) NOT NULL DEFAULT 0,
  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB COMMENT='People who buy things';

CREATE TABLE orders (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id int unsigned NOT NULL,
  status enum('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total decimal(12,2) NOT NULL,
  items json NOT NULL,
  placed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY orders_customer_idx (customer_id),
  CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- No primary key: howdah copies it as one chunk.
CREATE TABLE order_events (
  order_id bigint unsigned NOT NULL,
  at datetime(3) NOT NULL,
  note varchar(200)
) ENGINE=InnoDB;

INSERT INTO customers (id, email, name, vip, created_at)
SELECT seq, CONCAT('customer', seq, '@example.com'),
       CONCAT(ELT(1 + seq % 4, 'José', 'Zoë', 'Œdipe', 'Ana'), ' ', seq),
       seq % 10 = 0, '2023-01-01 00:00:00' + INTERVAL seq MINUTE
FROM seq_1_to_20000;

INSERT INTO orders (id, customer_id, status, total, items, placed_at)
SELECT seq, 1 + seq % 20000, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'),
       (seq % 50000) / 100, CONCAT('{"sku": "S', seq % 997, '", "qty": ', 1 + seq % 5, '}'),
       '2024-01-01 00:00:00' + INTERVAL seq SECOND
FROM seq_1_to_200000;

INSERT INTO order_events (order_id, at, note)
SELECT 1 + seq % 200000, '2024-01-01 00:00:00' + INTERVAL seq SECOND,
       IF(seq % 3 = 0, NULL, CONCAT('event ', seq))
FROM seq_1_to_200000;

CREATE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE status = 'paid';
