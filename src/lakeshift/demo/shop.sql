CREATE TABLE customers (
  customer_id   INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_name VARCHAR(120) NOT NULL,
  email         VARCHAR(190) NULL,
  country       CHAR(2) NOT NULL,
  tier          ENUM('bronze','silver','gold') NOT NULL DEFAULT 'bronze',
  is_active     TINYINT(1) NOT NULL DEFAULT 1,
  created_at    DATETIME(6) NOT NULL,
  updated_at    DATETIME(6) NOT NULL,
  KEY ix_customers_cursor (updated_at, customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE orders (
  order_id     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id  INT UNSIGNED NOT NULL,
  order_date   DATE NOT NULL,
  status       VARCHAR(20) NOT NULL,
  total        DECIMAL(12,2) NOT NULL,
  note         TEXT NULL,
  created_at   DATETIME(6) NOT NULL,
  updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY ix_orders_cursor (updated_at, order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE order_items (
  item_id     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id    BIGINT UNSIGNED NOT NULL,
  sku         VARCHAR(40) NOT NULL,
  quantity    SMALLINT NOT NULL,
  unit_price  DECIMAL(10,2) NOT NULL,
  created_at  DATETIME(6) NOT NULL,
  KEY ix_items_cursor (created_at, item_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
